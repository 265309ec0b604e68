//go:build !unix

package amibuild

// oNoFollow is 0 where the system has no O_NOFOLLOW; O_CREATE|O_EXCL alone
// already refuses an existing path there.
const oNoFollow = 0
