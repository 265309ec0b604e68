# A disaster-recovery team that builds in its primary region but only needs
# the AMI in its two recovery regions: the build-region AMI is not kept.
# Nothing is provisioned; the image is a re-stamped copy of the vendor base.
# Covers: skip_save_build_region, ami_regions, communicator = "none",
# snapshot_tags, tags with {{ .SourceAMI }}.
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

source "amazon-ebs" "dr" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  communicator  = "none"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name               = "dr-base-{{timestamp}}"
  ami_regions            = ["eu-west-1", "ap-southeast-2"]
  skip_save_build_region = true

  tags = {
    Name      = "dr-base"
    SourceAMI = "{{ .SourceAMI }}"
    Tier      = "disaster-recovery"
  }
  snapshot_tags = {
    Name = "dr-base"
  }
}

build {
  sources = ["source.amazon-ebs.dr"]
}
