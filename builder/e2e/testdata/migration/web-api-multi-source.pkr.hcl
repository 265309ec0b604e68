# An application team that builds its web and api images from one source
# block, overriding the name and AMI name per build, with provisioners that
# apply to one image only. Both images are shared with the staging account.
# Covers: source reused in the build block with overrides
# (source "source.amazon-ebs.base"), provisioners with only = [...],
# locals, merge() of tag maps, ami_users, force_deregister, a manifest
# post-processor.
# build: yes

packer {
  required_version = ">= 1.9.0"
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

variable "version" {
  type    = string
  default = "1.0.0"
}

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
  tags = {
    Application = "shop"
    Version     = var.version
  }
}

source "amazon-ebs" "base" {
  region        = "us-east-1"
  instance_type = "t3.small"
  ssh_username  = "ec2-user"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_users        = ["444455556666"]
  force_deregister = true
  tags             = local.tags
}

build {
  source "source.amazon-ebs.base" {
    name     = "web"
    ami_name = "shop-web-${var.version}-${local.timestamp}"
  }

  source "source.amazon-ebs.base" {
    name     = "api"
    ami_name = "shop-api-${var.version}-${local.timestamp}"
  }

  provisioner "shell" {
    inline = ["echo common setup"]
  }

  provisioner "shell" {
    only   = ["amazon-ebs.web"]
    inline = ["echo web: nginx config"]
  }

  provisioner "shell" {
    except = ["amazon-ebs.web"]
    inline = ["echo api: service unit"]
  }

  post-processor "manifest" {
    output = "shop-manifest.json"
  }
}
