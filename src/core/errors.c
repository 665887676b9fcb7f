/*
 * errors.c - version string and error texts.
 *
 * Errors are negative errno values; Cascade's own codes sit in the reserved
 * range [CASCADE_ERR_LAST, CASCADE_ERR_FIRST].  strerror_r is not used for
 * errno values: its text lives in a caller buffer, while ours must be
 * static, so the common codes are named here and the rest fall back to a
 * fixed text.
 */
#include <errno.h>
#include <string.h>

#include "cascade.h"

#define STR2(x) #x
#define STR(x) STR2(x)

const char *cascade_version(void) {
  return STR(CASCADE_VERSION_MAJOR) "." STR(CASCADE_VERSION_MINOR) "." STR(
      CASCADE_VERSION_PATCH);
}

const char *cascade_strerror(int err) {
  switch (err) {
  case 0: return "success";
  case CASCADE_EUNKNOWN: return "unknown setting";
  case CASCADE_ECORRUPT: return "stored data failed verification";
  case CASCADE_ECLOSED: return "store is closed";
  default: break;
  }
  unsigned e = err < 0 ? 0u - (unsigned)err : (unsigned)err;
  switch (e) {
  case ENOENT: return "no such key";
  case EEXIST: return "key exists";
  case ENOSPC: return "no space left in the tier (everything else pinned)";
  case EFBIG: return "value too large";
  case ENOBUFS: return "buffer too small for the value";
  case EINVAL: return "invalid argument";
  case ENOMEM: return "out of memory";
  case EBUSY: return "resource busy";
  case EACCES: return "permission denied";
  case EIO: return "input/output error";
  case EAGAIN: return "try again";
  case ENOSYS: return "not supported";
  case EPERM: return "operation not permitted";
  default: return "unknown error";
  }
}
