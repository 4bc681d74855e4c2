/** A camera file (camera.json, settings.json) that does not say what the simulated camera is. */
export class CameraFileError extends Error {}
