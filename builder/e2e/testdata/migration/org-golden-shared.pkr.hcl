# The cloud centre of excellence's "golden" image, shared with the whole AWS
# Organization and with two OUs, copied to the two other regions the
# company runs in. Tags are written as repeatable tag blocks, as the team's
# style guide asks.
# Covers: ami_org_arns, ami_ou_arns, ami_users, snapshot_users, ami_regions,
# repeatable tag, snapshot_tag and run_tag blocks, formatdate in ami_name,
# a shell provisioner with environment_vars.
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "org_arn" {
  type    = string
  default = "arn:aws:organizations::111122223333:organization/o-a1b2c3d4e5"
}

variable "workload_ous" {
  type = list(string)
  default = [
    "arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-cd34ef56",
    "arn:aws:organizations::111122223333:ou/o-a1b2c3d4e5/ou-ab12-77aa88bb",
  ]
}

variable "golden_version" {
  type    = string
  default = "2024.12.1"
}

source "amazon-ebs" "golden" {
  region        = "us-east-1"
  instance_type = "t3.medium"
  ssh_username  = "ec2-user"
  ssh_timeout   = "10m"

  source_ami_filter {
    filters = {
      name         = "al2023-ami-2023.*-kernel-6.1-x86_64"
      architecture = "x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name        = "golden-al2023-${formatdate("YYYYMMDD-hhmm", timestamp())}"
  ami_description = "Golden image ${var.golden_version}"

  ami_regions    = ["eu-west-1", "ap-southeast-2"]
  ami_org_arns   = [var.org_arn]
  ami_ou_arns    = var.workload_ous
  ami_users      = ["444455556666"]
  snapshot_users = ["444455556666"]

  tag {
    key   = "Name"
    value = "golden-al2023"
  }
  tag {
    key   = "GoldenVersion"
    value = var.golden_version
  }
  tag {
    key   = "SourceAMI"
    value = "{{ .SourceAMI }}"
  }

  snapshot_tag {
    key   = "Name"
    value = "golden-al2023-root"
  }

  run_tag {
    key   = "Owner"
    value = "ccoe"
  }
}

build {
  name    = "golden"
  sources = ["source.amazon-ebs.golden"]

  provisioner "shell" {
    environment_vars = [
      "GOLDEN_VERSION=${var.golden_version}",
    ]
    inline = [
      "echo \"golden image $GOLDEN_VERSION\"",
      "df -h /",
    ]
  }
}
