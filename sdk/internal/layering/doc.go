// Package layering holds the test that keeps the SDK usable on its own: no
// package under sdk/ may import Packer, HCL, cty, or the plugin's Packer
// side (builder/, post-processor/, example/). It has no code.
package layering
