// Public surface of hako's error package.
export { Code, codeName } from './codes.js';
export { HakoError, errorf, isNotFound, isAlreadyExists, isUnavailable, isDeadlineExceeded } from './hako-error.js';
