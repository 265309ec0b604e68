//go:build unix

package amibuild

import "syscall"

// oNoFollow makes opening a path fail when its last element is a symlink.
const oNoFollow = syscall.O_NOFOLLOW
