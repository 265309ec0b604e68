package distribute

import (
	"context"
	"errors"
	"fmt"

	"github.com/amiforge/packer-plugin-ami/sdk/internal/awserr"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// publishedImages maps the AMIs that RetainInput.Parameters (their current
// values) and RetainInput.LaunchTemplates (every version) point at in
// region to a description of the user.
func publishedImages(ctx context.Context, api RetainAPI, o Options, region string, in *RetainInput) (map[string]string, error) {
	users := map[string]string{}
	for _, p := range in.Parameters {
		if p.Region != "" && p.Region != region {
			continue
		}
		if o.SSM == nil {
			return nil, fmt.Errorf("parameter %s: Options.SSM is nil", p.Name)
		}
		out, err := o.SSM(region).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(p.Name)})
		var nf *ssmtypes.ParameterNotFound
		switch {
		case errors.As(err, &nf):
			continue
		case err != nil:
			return nil, fmt.Errorf("read parameter %s: %w", p.Name, err)
		}
		if id := aws.ToString(out.Parameter.Value); id != "" && users[id] == "" {
			users[id] = "parameter " + p.Name
		}
	}
	for _, lt := range in.LaunchTemplates {
		if lt.Region != "" && lt.Region != region {
			continue
		}
		dlt := &ec2.DescribeLaunchTemplateVersionsInput{}
		what := lt.Name
		if lt.ID != "" {
			dlt.LaunchTemplateId, what = aws.String(lt.ID), lt.ID
		} else {
			dlt.LaunchTemplateName = aws.String(lt.Name)
		}
		pg := ec2.NewDescribeLaunchTemplateVersionsPaginator(api, dlt)
		for pg.HasMorePages() {
			page, err := pg.NextPage(ctx)
			if isNotFound(err) || awserr.Code(err) == "InvalidLaunchTemplateName.NotFoundException" {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("list the versions of launch template %s: %w", what, err)
			}
			for _, v := range page.LaunchTemplateVersions {
				if v.LaunchTemplateData == nil {
					continue
				}
				if id := aws.ToString(v.LaunchTemplateData.ImageId); id != "" && users[id] == "" {
					users[id] = fmt.Sprintf("launch template %s version %d", what, aws.ToInt64(v.VersionNumber))
				}
			}
		}
	}
	return users, nil
}
