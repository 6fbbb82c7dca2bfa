// Public surface of hako's storage: the sandbox 9p share, host mounts, and OCI image unpacking.
export { SHARE_TAG, Share, validId } from './share.js';
export { mountContainerRootfs } from './overlay.js';
export type { ContainerRootfs } from './overlay.js';
export { bindMount, overlayMount, unmount, unmountAll, assertNoSymlinks } from './mount.js';
export { readMounts, mountsUnder, parseMountInfo, isUnder } from './mountinfo.js';
export type { MountEntry } from './mountinfo.js';
export { secureJoin, cleanRelative } from './secure-path.js';
export { parseImageRef, unpackImage } from './image-unpack.js';
export type { ImageRef, UnpackedImage, UnpackOptions } from './image-unpack.js';
export { resolveImage, isLayoutDir } from './oci-layout.js';
export type { ImageConfig, ResolvedImage, Descriptor } from './oci-layout.js';
export { findCommand } from './find-command.js';
