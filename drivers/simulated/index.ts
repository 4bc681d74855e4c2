import type { CameraDriver, DeviceInfo, DriverLogger } from '../types.js';
import { SimCameraSession } from './session.js';

export { CAMERA_FILE, SimCameraSession } from './session.js';
export { parseCameraFile, CameraFileError, type CameraSpec } from './camera-file.js';

export const simulatedDriver: CameraDriver = {
  name: 'simulated',
  matches: (device: DeviceInfo) => (device.bus === 'sim' ? 100 : 0),
  open: async (device: DeviceInfo, log: DriverLogger) => {
    if (!device.path) throw new Error('simulated device has no folder');
    return SimCameraSession.open(device.path, log);
  },
};
