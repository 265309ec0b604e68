//go:build unix

package awstest

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// moto 5.2.1 keeps resources per account: credentials from its STS
// AssumeRole act in the role's account, and the x-moto-account-id header
// selects an account whatever the credentials. But its CopyImage and
// DescribeImages look for an AMI only in the caller's own account, so an
// AMI another account shared with the caller is "not found" to it, where
// EC2 copies it or describes it.
//
// Unless ProxyOptions.RawCrossAccountCopy, the proxy emulates EC2 when
// moto answers InvalidAMIID.NotFound:
//
//   - CopyImage: the proxy looks for the source AMI, in its source region,
//     in every other account it has seen (the accounts of the access keys
//     of the calls it forwarded, each resolved once with STS
//     GetCallerIdentity through moto, and accounts named by
//     x-moto-account-id), calling moto as that account with the
//     x-moto-account-id header. The copy is made only when the owner's
//     launchPermission grants the caller's account (or group all) and the
//     createVolumePermission of each of the AMI's snapshots does too. Then
//     the proxy registers the copy in the caller's account and the
//     destination region with RegisterImage (Name and Description from the
//     request, the only fields moto keeps) and answers with its ID; the
//     ClientToken and TagSpecifications emulation of CopyImage
//     (copyimage.go) applies to it as to any copy, and the call is recorded
//     with Call.Emulated "cross-account copy of ami-… owned by …". An AMI
//     shared without its snapshots is refused as EC2 refuses it:
//     InvalidRequest, "You do not have permission to access the storage of
//     this ami." An AMI not shared with the caller keeps moto's
//     InvalidAMIID.NotFound, as in EC2.
//   - DescribeImages by ImageId.N only (no owner, executable-by or filter
//     parameters): each ID the caller does not own but that another account
//     shared with it (launchPermission) is described as its owner sees it,
//     so a grantee can check what it was given. If any ID is neither, moto's
//     InvalidAMIID.NotFound stays.
//
// Limits: grants to organizations and organizational units are not
// honoured (treated as not shared); the copy is moto's RegisterImage
// stand-in, with moto's one fake snapshot, not a copy of the source's
// block device mappings, encryption or other attributes; DescribeImages
// with owner or executable-by parameters still sees only the caller's own
// AMIs; the source is found only in accounts whose calls went through this
// proxy.

type sharedImage struct {
	owner     string
	item      []byte // the <item> of the owner's DescribeImages answer
	launch    bool   // launchPermission grants the caller
	snapshots bool   // every snapshot's createVolumePermission grants the caller
}

var (
	imageIDParamRE   = regexp.MustCompile(`^ImageId\.(\d+)$`)
	ownFilterParamRE = regexp.MustCompile(`^(Owner|ExecutableBy|Filter)\.`)
)

func (p *Proxy) crossAccountEmulation(call *Call) *emulation {
	if call.Action == "CopyImage" {
		return &emulation{after: func(resp *http.Response) (string, error) { return p.crossAccountCopy(resp, call) }}
	}
	for k := range call.Params {
		if ownFilterParamRE.MatchString(k) {
			return nil
		}
	}
	if _, ids := indexed(call.Params, imageIDParamRE); len(ids) == 0 {
		return nil
	}
	return &emulation{after: func(resp *http.Response) (string, error) { return p.granteeDescribeImages(resp, call) }}
}

// notFound reports whether resp is moto's InvalidAMIID.NotFound.
func notFound(resp *http.Response) (bool, error) {
	if resp.StatusCode != http.StatusBadRequest {
		return false, nil
	}
	body, err := readBody(resp)
	return errorCodeOf(body) == "InvalidAMIID.NotFound", err
}

// notFoundBy reports whether resp is moto's InvalidAMIID.NotFound and, if
// so, who made the call and the account it acts in: the emulations below
// look further only when moto found no image for the caller.
func (p *Proxy) notFoundBy(resp *http.Response) (c caller, account string, ok bool, err error) {
	if nf, err := notFound(resp); !nf || err != nil {
		return caller{}, "", false, err
	}
	c = callerOf(resp.Request)
	if account, err = p.accountOf(resp.Request.Context(), c); err != nil {
		return caller{}, "", false, err
	}
	return c, account, true, nil
}

// crossAccountCopy turns moto's InvalidAMIID.NotFound for a shared source
// AMI into a copy in the caller's account.
func (p *Proxy) crossAccountCopy(resp *http.Response, call *Call) (string, error) {
	c, me, ok, err := p.notFoundBy(resp)
	if !ok {
		return "", err
	}
	ctx := resp.Request.Context()
	src, srcRegion := call.Params.Get("SourceImageId"), call.Params.Get("SourceRegion")
	if srcRegion == "" {
		srcRegion = c.region
	}
	sh, err := p.findShared(ctx, c, me, srcRegion, src, true)
	if err != nil || sh == nil || !sh.launch {
		return "", err
	}
	if !sh.snapshots {
		setBody(resp, http.StatusBadRequest, ec2ErrorBody("InvalidRequest", "You do not have permission to access the storage of this ami."))
		return fmt.Sprintf("cross-account copy of %s owned by %s refused: its snapshots are not shared with %s", src, sh.owner, me), nil
	}
	reg := url.Values{"Action": {"RegisterImage"}, "Name": {call.Params.Get("Name")}}
	if d := call.Params.Get("Description"); d != "" {
		reg.Set("Description", d)
	}
	out, err := p.queryOK(ctx, c, "ec2", reg)
	if err != nil {
		return "", fmt.Errorf("cross-account copy of %s: %w", src, err)
	}
	m := imageIDRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("cross-account copy of %s: no image ID in %.200s", src, out)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<CopyImageResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>awstest-%08d</requestId><imageId>%s</imageId></CopyImageResponse>`,
		call.Seq, m[1])
	setBody(resp, http.StatusOK, b.Bytes())
	return fmt.Sprintf("cross-account copy of %s owned by %s", src, sh.owner), nil
}

// granteeDescribeImages answers a DescribeImages by IDs that moto found
// missing when each ID is the caller's or shared with it.
func (p *Proxy) granteeDescribeImages(resp *http.Response, call *Call) (string, error) {
	c, me, ok, err := p.notFoundBy(resp)
	if !ok {
		return "", err
	}
	ctx := resp.Request.Context()
	_, ids := indexed(call.Params, imageIDParamRE)
	var found [][]byte
	var shared []string
	for _, id := range ids {
		status, body, err := p.query(ctx, c, "ec2", url.Values{"Action": {"DescribeImages"}, "ImageId.1": {id}})
		if err != nil {
			return "", err
		}
		if status == http.StatusOK {
			if spans, err := items(body, "imagesSet"); err == nil && len(spans) == 1 {
				found = append(found, body[spans[0].start:spans[0].end])
				continue
			}
		}
		sh, err := p.findShared(ctx, c, me, c.region, id, false)
		if err != nil || sh == nil || !sh.launch {
			return "", err
		}
		found = append(found, sh.item)
		shared = append(shared, id+" of "+sh.owner)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>awstest-%08d</requestId><imagesSet>`, call.Seq)
	for _, it := range found {
		b.Write(it)
	}
	b.WriteString("</imagesSet></DescribeImagesResponse>")
	setBody(resp, http.StatusOK, b.Bytes())
	return "shared AMIs described: " + strings.Join(shared, ", "), nil
}

// findShared looks for image in region in the other accounts the proxy has
// seen and reports what its owner grants the account me. nil when no
// other account has it.
func (p *Proxy) findShared(ctx context.Context, c caller, me, region, image string, withSnapshots bool) (*sharedImage, error) {
	accts, err := p.knownAccounts(ctx)
	if len(accts) == 0 {
		return nil, err
	}
	for _, a := range accts {
		if a == me {
			continue
		}
		as := caller{key: c.key, region: region, account: a}
		status, body, err := p.query(ctx, as, "ec2", url.Values{"Action": {"DescribeImages"}, "ImageId.1": {image}})
		if err != nil {
			return nil, fmt.Errorf("find %s in account %s: %w", image, a, err)
		}
		if status != http.StatusOK {
			continue
		}
		spans, err := items(body, "imagesSet")
		if err != nil {
			return nil, fmt.Errorf("find %s in account %s: %w", image, a, err)
		}
		if len(spans) != 1 {
			continue
		}
		sh := &sharedImage{owner: a, item: body[spans[0].start:spans[0].end]}
		attr, err := p.queryOK(ctx, as, "ec2", url.Values{"Action": {"DescribeImageAttribute"}, "ImageId": {image}, "Attribute": {"launchPermission"}})
		if err != nil {
			return nil, fmt.Errorf("launch permission of %s in account %s: %w", image, a, err)
		}
		if sh.launch, err = grants(attr, "launchPermission", me); err != nil || !withSnapshots {
			return sh, err
		}
		sh.snapshots = true
		for _, m := range snapshotIDRE.FindAllSubmatch(sh.item, -1) {
			snap := string(m[1])
			attr, err := p.queryOK(ctx, as, "ec2", url.Values{"Action": {"DescribeSnapshotAttribute"}, "SnapshotId": {snap}, "Attribute": {"createVolumePermission"}})
			if err != nil {
				return nil, fmt.Errorf("create volume permission of %s in account %s: %w", snap, a, err)
			}
			ok, err := grants(attr, "createVolumePermission", me)
			if err != nil {
				return nil, err
			}
			sh.snapshots = sh.snapshots && ok
		}
		return sh, nil
	}
	return nil, nil
}

// grants reports whether the permission list set of an attribute answer
// names account or the group all.
func grants(body []byte, set, account string) (bool, error) {
	spans, err := items(body, set)
	if err != nil {
		return false, err
	}
	for _, s := range spans {
		var perm struct {
			UserID string `xml:"userId"`
			Group  string `xml:"group"`
		}
		if err := xml.Unmarshal(body[s.start:s.end], &perm); err != nil {
			return false, err
		}
		if perm.UserID == account || perm.Group == "all" {
			return true, nil
		}
	}
	return false, nil
}
