# Builds an AMI against a local AWS emulator (moto) and distributes it to two
# more regions, shared with two accounts and an organization, tagged per
# region, with create-volume permission on the snapshots. Then it points
# consumers at the new AMIs: the parameter /demo/web/latest and a new default
# version of launch template demo-web in every region, and, in another account
# (through a role of that account), a copy the account owns with its own
# parameter. An OpenSSH server
# on 127.0.0.1 stands in for the build instance. `make demo` starts both,
# fills in the variables below and runs this template, then instance.pkr.hcl;
# to run this one alone:
#
#   go run ./example/local -only distribute
#
# Nothing here reaches real AWS. The emulator's endpoint and test credentials
# come from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY).

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "ssh_port" {
  type = number
}

variable "ssh_username" {
  type = string
}

variable "ssh_private_key_file" {
  type = string
}

# Directory on "the instance" (this machine) the provisioner writes to; the
# distribution manifest is written there too.
variable "output_dir" {
  type = string
}

source "ami-ebs" "demo" {
  region        = var.region
  instance_type = "t3.micro"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-6.1-x86_64"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ssh_host             = "127.0.0.1"
  ssh_port             = var.ssh_port
  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "1m"

  ami_name        = "demo-web-{{timestamp}}"
  ami_description = "Demo AMI built against the local emulator"

  tags = {
    Name    = "demo-web"
    BuiltBy = "packer-plugin-ami"
  }
}

build {
  sources = ["source.ami-ebs.demo"]

  provisioner "shell" {
    inline = [
      "echo \"provisioned by packer at $(date -u +%FT%TZ)\" > ${var.output_dir}/provisioned.txt",
      "cat ${var.output_dir}/provisioned.txt",
    ]
  }

  post-processor "ami-distribute" {
    region  = var.region
    regions = ["eu-west-1", "ap-southeast-2"]

    ami_users      = ["111122223333", "444455556666"]
    ami_org_arns   = ["arn:aws:organizations::123456789012:organization/o-abcdefghij"]
    snapshot_users = ["111122223333"]

    tags = {
      Name         = "demo-web"
      Region       = "{{ .Region }}"
      SourceRegion = "{{ .SourceRegion }}"
      SourceAMI    = "{{ .SourceAMI }}"
    }

    # Each region's AMI, for `resolve:ssm:/demo/web/latest`.
    ssm_parameters {
      name = "/demo/web/latest"
      tags = {
        Team = "web"
      }
    }

    # The template exists already; its new version becomes the default.
    launch_templates {
      name                = "demo-web"
      set_default_version = true
    }

    # A workload account gets a copy of its own in eu-west-1, made with a
    # role it lets this account assume, and its own parameter and template.
    target_accounts {
      account_id  = "222222222222"
      role_arn    = "arn:aws:iam::222222222222:role/ami-publisher"
      external_id = "demo-external-id"
      regions     = ["eu-west-1"]

      ssm_parameters {
        name = "/demo/web/latest"
      }

      launch_templates {
        name                = "demo-web"
        set_default_version = true
      }
    }

    manifest_output = "${var.output_dir}/distribute-manifest.json"
  }
}
