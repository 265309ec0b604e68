//go:build unix

package bundlestore

import "testing"

func TestKey(t *testing.T) {
	tests := []struct {
		prefix, file, want string
	}{
		{"", "a.part.0", "a.part.0"},
		{"images", "a.part.0", "images/a.part.0"},
		{"images/x/", "a.part.0", "images/x/a.part.0"},
		{"/images/x", "a.manifest.xml", "images/x/a.manifest.xml"},
		{"/", "a.part.0", "a.part.0"},
	}
	for _, tc := range tests {
		if got := Key(tc.prefix, tc.file); got != tc.want {
			t.Errorf("Key(%q, %q) = %q, want %q", tc.prefix, tc.file, got, tc.want)
		}
	}
}

func TestLocation(t *testing.T) {
	l := Location{Bucket: "b", Prefix: "p/q", Name: "root.img"}
	if got, want := l.ImageLocation(), "b/p/q/root.img.manifest.xml"; got != want {
		t.Errorf("ImageLocation = %q, want %q", got, want)
	}
	if got, want := (Location{Bucket: "b", Name: "n"}).ImageLocation(), "b/n.manifest.xml"; got != want {
		t.Errorf("ImageLocation without prefix = %q, want %q", got, want)
	}
}

func TestParseImageLocation(t *testing.T) {
	tests := []struct {
		in      string
		want    Location
		wantErr bool
	}{
		{in: "b/p/q/root.img.manifest.xml", want: Location{Bucket: "b", Prefix: "p/q", Name: "root.img"}},
		{in: "b/root.img.manifest.xml", want: Location{Bucket: "b", Name: "root.img"}},
		{in: "s3://b/x/n.manifest.xml", want: Location{Bucket: "b", Prefix: "x", Name: "n"}},
		{in: "123456789012/my-ebs-image", wantErr: true},
		{in: "b/.manifest.xml", wantErr: true},
		{in: "b", wantErr: true},
		{in: "/x.manifest.xml", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseImageLocation(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseImageLocation(%q) = %+v, want error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
