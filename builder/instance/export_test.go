//go:build unix

package instance

// ChangedOffRoot lets the external VM tests share changedOffRoot.
var ChangedOffRoot = changedOffRoot
