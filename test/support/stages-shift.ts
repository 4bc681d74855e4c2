/** Minutes into a shift → an event: an 8-hour shift with a display-only minute, one escalation and one direct recording. */
export const SHIFT: Array<[number, string]> = [
  [0, 'power.on'],
  [60, 'display.on'],
  [62, 'display.off'],
  [120, 'display.on'],
  [120.5, 'recording.start'],
  [130, 'recording.stop'],
  [131, 'display.off'],
  [200, 'recording.start'],
  [210, 'recording.stop'],
  [480, 'power.off'],
];
