//go:build linux

package vmtest_test

import (
	"fmt"

	"github.com/amiforge/packer-plugin-ami/sdk/vmtest"
)

// A recipe's key names the cached image it makes: recipes that differ only
// in the order or repetition of their packages share one image, any other
// difference makes another; Validate refuses a recipe before anything is
// built.
func ExampleRecipe_Key() {
	a := vmtest.Recipe{Packages: []string{"xfsprogs", "rsync"}}
	b := vmtest.Recipe{Packages: []string{"rsync", "xfsprogs", "rsync"}}
	c := vmtest.Recipe{Packages: []string{"rsync"}}
	fmt.Println("same order-free packages, same image:", a.Key() == b.Key())
	fmt.Println("other packages, other image:", a.Key() != c.Key())
	fmt.Println("zero value is the default:", vmtest.Recipe{}.Key() == vmtest.DefaultRecipe().Key())
	fmt.Println(vmtest.Recipe{DiskSizeMiB: 100}.Validate() != nil)
	// Output:
	// same order-free packages, same image: true
	// other packages, other image: true
	// zero value is the default: true
	// true
}
