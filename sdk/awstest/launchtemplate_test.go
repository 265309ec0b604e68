//go:build unix

package awstest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// launchTemplate creates a launch template named name whose version 1
// uses imageID, and returns its ID.
func launchTemplate(t *testing.T, c *ec2.Client, name, imageID string) string {
	t.Helper()
	out, err := c.CreateLaunchTemplate(context.Background(), &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(imageID)},
	})
	if err != nil {
		t.Fatalf("CreateLaunchTemplate %s: %v", name, err)
	}
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId)
}

func versionInput(ltID, imageID, token string) *ec2.CreateLaunchTemplateVersionInput {
	in := &ec2.CreateLaunchTemplateVersionInput{
		LaunchTemplateId:   aws.String(ltID),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String(imageID)},
	}
	if token != "" {
		in.ClientToken = aws.String(token)
	}
	return in
}

// versionNumbers lists the version numbers c sees for the template.
func versionNumbers(t *testing.T, c *ec2.Client, ltID string, versions ...string) []int64 {
	t.Helper()
	out, err := c.DescribeLaunchTemplateVersions(context.Background(), &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateId: aws.String(ltID), Versions: versions,
	})
	if err != nil {
		t.Fatalf("DescribeLaunchTemplateVersions %s %v: %v", ltID, versions, err)
	}
	var nums []int64
	for _, v := range out.LaunchTemplateVersions {
		nums = append(nums, aws.ToInt64(v.VersionNumber))
	}
	return nums
}

func latestVersion(t *testing.T, c *ec2.Client, ltID string) int64 {
	t.Helper()
	out, err := c.DescribeLaunchTemplates(context.Background(), &ec2.DescribeLaunchTemplatesInput{LaunchTemplateIds: []string{ltID}})
	if err != nil || len(out.LaunchTemplates) != 1 {
		t.Fatalf("DescribeLaunchTemplates %s: %d templates, %v", ltID, len(out.LaunchTemplates), err)
	}
	return aws.ToInt64(out.LaunchTemplates[0].LatestVersionNumber)
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// A repeated ClientToken is answered with the version the first call made,
// and moto holds only that one new version.
func TestProxyLaunchTemplateVersionToken(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	const region = "us-west-1"
	c, _ := Clients(p.URL, region)
	lt := launchTemplate(t, c, "proxy-lt-token", "ami-11111111")

	first, err := c.CreateLaunchTemplateVersion(ctx, versionInput(lt, "ami-22222222", "lt-token-a"))
	if err != nil {
		t.Fatalf("CreateLaunchTemplateVersion: %v", err)
	}
	again, err := c.CreateLaunchTemplateVersion(ctx, versionInput(lt, "ami-22222222", "lt-token-a"))
	if err != nil {
		t.Fatalf("CreateLaunchTemplateVersion again: %v", err)
	}
	if a, b := aws.ToInt64(first.LaunchTemplateVersion.VersionNumber), aws.ToInt64(again.LaunchTemplateVersion.VersionNumber); a != 2 || b != 2 {
		t.Errorf("versions %d and %d, want 2 and 2", a, b)
	}
	if got := aws.ToString(again.LaunchTemplateVersion.LaunchTemplateData.ImageId); got != "ami-22222222" {
		t.Errorf("replayed version's image %q", got)
	}
	obs, _ := ObserverClients(sharedMoto.Endpoint, region)
	if got := versionNumbers(t, obs, lt); !reflect.DeepEqual(got, []int64{1, 2}) {
		t.Errorf("moto holds versions %v, want [1 2]", got)
	}
	calls := p.CallsFor("ec2", "CreateLaunchTemplateVersion")
	if len(calls) != 2 || calls[0].Emulated != "" || !strings.Contains(calls[1].Emulated, "repeated ClientToken") {
		t.Errorf("calls recorded as %q and %q", calls[0].Emulated, calls[len(calls)-1].Emulated)
	}

	other, err := c.CreateLaunchTemplateVersion(ctx, versionInput(lt, "ami-33333333", "lt-token-b"))
	if err != nil {
		t.Fatalf("CreateLaunchTemplateVersion token b: %v", err)
	}
	if got := aws.ToInt64(other.LaunchTemplateVersion.VersionNumber); got != 3 {
		t.Errorf("a new token made version %d, want 3", got)
	}
}

// With RawCreateLaunchTemplateVersion, moto makes a version per call.
func TestProxyRawCreateLaunchTemplateVersion(t *testing.T) {
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{RawCreateLaunchTemplateVersion: true})
	c, _ := Clients(p.URL, "us-west-1")
	lt := launchTemplate(t, c, "proxy-lt-raw-token", "ami-11111111")
	for want := int64(2); want <= 3; want++ {
		out, err := c.CreateLaunchTemplateVersion(context.Background(), versionInput(lt, "ami-22222222", "lt-token-raw"))
		if err != nil {
			t.Fatalf("CreateLaunchTemplateVersion: %v", err)
		}
		if got := aws.ToInt64(out.LaunchTemplateVersion.VersionNumber); got != want {
			t.Errorf("version %d, want moto's %d", got, want)
		}
	}
}

func TestProxyDeleteLaunchTemplateVersions(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	const region = "us-west-2"
	c, _ := Clients(p.URL, region)
	lt := launchTemplate(t, c, "proxy-lt-delete", "ami-11111111")
	for range 3 { // versions 2, 3, 4
		if _, err := c.CreateLaunchTemplateVersion(ctx, versionInput(lt, "ami-22222222", "")); err != nil {
			t.Fatalf("CreateLaunchTemplateVersion: %v", err)
		}
	}

	type failed struct {
		version int64
		code    string
	}
	steps := []struct {
		name       string
		id, byName string
		versions   []string
		wantErr    string // error code of the whole call
		deleted    []int64
		failed     []failed
		remaining  []int64
		latest     int64
	}{
		{name: "latest and a missing version", id: lt, versions: []string{"4", "9"},
			deleted: []int64{4}, failed: []failed{{9, "launchTemplateVersionDoesNotExist"}},
			remaining: []int64{1, 2, 3}, latest: 3},
		{name: "by name, one already deleted", byName: "proxy-lt-delete", versions: []string{"3", "4"},
			deleted: []int64{3}, failed: []failed{{4, "launchTemplateVersionDoesNotExist"}},
			remaining: []int64{1, 2}, latest: 2},
		{name: "default refused", id: lt, versions: []string{"2", "1"},
			wantErr: "InvalidParameterValue", remaining: []int64{1, 2}, latest: 2},
		{name: "unknown template name", byName: "proxy-lt-none", versions: []string{"2"},
			failed: []failed{{2, "launchTemplateNameDoesNotExist"}}, remaining: []int64{1, 2}, latest: 2},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			in := &ec2.DeleteLaunchTemplateVersionsInput{Versions: s.versions}
			if s.id != "" {
				in.LaunchTemplateId = aws.String(s.id)
			} else {
				in.LaunchTemplateName = aws.String(s.byName)
			}
			out, err := c.DeleteLaunchTemplateVersions(ctx, in)
			if s.wantErr != "" {
				if code := errorCode(err); code != s.wantErr {
					t.Fatalf("DeleteLaunchTemplateVersions: %v, want code %s", err, s.wantErr)
				}
			} else if err != nil {
				t.Fatalf("DeleteLaunchTemplateVersions: %v", err)
			} else {
				var deleted []int64
				for _, d := range out.SuccessfullyDeletedLaunchTemplateVersions {
					deleted = append(deleted, aws.ToInt64(d.VersionNumber))
					if aws.ToString(d.LaunchTemplateId) != lt || aws.ToString(d.LaunchTemplateName) != "proxy-lt-delete" {
						t.Errorf("deleted item names %s %s", aws.ToString(d.LaunchTemplateId), aws.ToString(d.LaunchTemplateName))
					}
				}
				var fails []failed
				for _, f := range out.UnsuccessfullyDeletedLaunchTemplateVersions {
					if f.ResponseError == nil || aws.ToString(f.ResponseError.Message) == "" {
						t.Errorf("failed item without message: %+v", f)
						continue
					}
					fails = append(fails, failed{aws.ToInt64(f.VersionNumber), string(f.ResponseError.Code)})
				}
				if !reflect.DeepEqual(deleted, s.deleted) || !reflect.DeepEqual(fails, s.failed) {
					t.Errorf("deleted %v failed %v, want %v and %v", deleted, fails, s.deleted, s.failed)
				}
			}
			if got := versionNumbers(t, c, lt); !reflect.DeepEqual(got, s.remaining) {
				t.Errorf("versions seen after the call %v, want %v", got, s.remaining)
			}
			if got := latestVersion(t, c, lt); got != s.latest {
				t.Errorf("latestVersionNumber %d, want %d", got, s.latest)
			}
			if got := versionNumbers(t, c, lt, "$Latest"); !reflect.DeepEqual(got, []int64{s.latest}) {
				t.Errorf("$Latest is %v, want %d", got, s.latest)
			}
		})
	}

	// A deleted version can be neither described nor made the default.
	_, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(lt), Versions: []string{"3"}})
	if code := errorCode(err); code != "InvalidLaunchTemplateId.VersionNotFound" {
		t.Errorf("describe deleted version 3: %v", err)
	}
	_, err = c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(lt), DefaultVersion: aws.String("4")})
	if code := errorCode(err); code != "InvalidLaunchTemplateId.VersionNotFound" {
		t.Errorf("default to deleted version 4: %v", err)
	}
	// Once another version is the default, the first one can go.
	if _, err := c.ModifyLaunchTemplate(ctx, &ec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(lt), DefaultVersion: aws.String("2")}); err != nil {
		t.Fatalf("default to version 2: %v", err)
	}
	out, err := c.DeleteLaunchTemplateVersions(ctx, &ec2.DeleteLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(lt), Versions: []string{"1"}})
	if err != nil || len(out.SuccessfullyDeletedLaunchTemplateVersions) != 1 {
		t.Fatalf("delete version 1 after the default moved: %v", err)
	}
	if got := versionNumbers(t, c, lt); !reflect.DeepEqual(got, []int64{2}) {
		t.Errorf("versions %v, want [2]", got)
	}
	// A new version gets a number never used before, as in EC2.
	nv, err := c.CreateLaunchTemplateVersion(ctx, versionInput(lt, "ami-44444444", ""))
	if err != nil || aws.ToInt64(nv.LaunchTemplateVersion.VersionNumber) != 5 {
		t.Fatalf("new version after deletions: %v, %v", nv, err)
	}
	if got := latestVersion(t, c, lt); got != 5 {
		t.Errorf("latestVersionNumber %d after a new version, want 5", got)
	}
	for _, call := range p.CallsFor("ec2", "DeleteLaunchTemplateVersions") {
		if call.Emulated == "" {
			t.Errorf("DeleteLaunchTemplateVersions not recorded as emulated: %s", call)
		}
	}
}

// With RawDeleteLaunchTemplateVersions the call reaches moto, which has no
// implementation of it.
func TestProxyRawDeleteLaunchTemplateVersions(t *testing.T) {
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{RawDeleteLaunchTemplateVersions: true})
	c, _ := Clients(p.URL, "us-west-2")
	lt := launchTemplate(t, c, "proxy-lt-raw-delete", "ami-11111111")
	if _, err := c.CreateLaunchTemplateVersion(context.Background(), versionInput(lt, "ami-22222222", "")); err != nil {
		t.Fatalf("CreateLaunchTemplateVersion: %v", err)
	}
	_, err := c.DeleteLaunchTemplateVersions(context.Background(), &ec2.DeleteLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(lt), Versions: []string{"2"}})
	if err == nil {
		t.Fatal("DeleteLaunchTemplateVersions reached moto and succeeded")
	}
	if calls := p.CallsFor("ec2", "DeleteLaunchTemplateVersions"); len(calls) != 1 || calls[0].Status != 500 {
		t.Errorf("calls %v, want one answered 500 by moto", calls)
	}
}

// Faults apply to the emulated DeleteLaunchTemplateVersions as to a call
// moto answers: an error before the call is carried out deletes nothing,
// an answer lost after it (Fault.Forward) leaves the version deleted.
func TestProxyDeleteLaunchTemplateVersionsFaults(t *testing.T) {
	ctx := context.Background()
	p := NewProxy(t, sharedMoto.Endpoint, ProxyOptions{})
	c, _ := Clients(p.URL, "us-west-2")
	lt := launchTemplate(t, c, "proxy-lt-delete-faults", "ami-11111111")
	for range 2 { // versions 2, 3
		if _, err := c.CreateLaunchTemplateVersion(ctx, versionInput(lt, "ami-22222222", "")); err != nil {
			t.Fatalf("CreateLaunchTemplateVersion: %v", err)
		}
	}
	tests := []struct {
		name      string
		fault     *Fault
		version   string
		remaining []int64
	}{
		{name: "refused before", fault: ErrorFault("RequestLimitExceeded", 503), version: "3", remaining: []int64{1, 2, 3}},
		{name: "answer lost after", fault: &Fault{Forward: true, Status: 500}, version: "3", remaining: []int64{1, 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.SetFault(FailAlways("ec2", "DeleteLaunchTemplateVersions", tc.fault))
			_, err := c.DeleteLaunchTemplateVersions(ctx, &ec2.DeleteLaunchTemplateVersionsInput{LaunchTemplateId: aws.String(lt), Versions: []string{tc.version}})
			p.SetFault(nil)
			if err == nil {
				t.Fatal("DeleteLaunchTemplateVersions succeeded through a fault")
			}
			if got := versionNumbers(t, c, lt); !reflect.DeepEqual(got, tc.remaining) {
				t.Errorf("versions %v, want %v", got, tc.remaining)
			}
		})
	}
}
