# A network team's template for accounts without public subnets: the build
# instance is found a subnet by tag, gets no public IP and is reached on its
# private address from the CI runner inside the VPC.
# Covers: subnet_filter, vpc_id, security_group_ids,
# associate_public_ip_address = false, ssh_interface = "private_ip",
# iam_instance_profile, user_data, run_tags, max_retries.
# build: yes

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.8"
    }
  }
}

source "amazon-ebs" "private" {
  region        = "us-east-1"
  instance_type = "t3.small"
  max_retries   = 10

  vpc_id             = "vpc-0a1b2c3d4e5f60718"
  security_group_ids = ["sg-0123456789abcdef0"]
  subnet_filter {
    filters = {
      "tag:Tier" = "private"
    }
    most_free = true
    random    = false
  }
  associate_public_ip_address = false
  ssh_interface               = "private_ip"
  iam_instance_profile        = "packer-builder"

  user_data = <<-EOT
    #!/bin/bash
    echo 'proxy=http://proxy.internal:3128' >> /etc/dnf/dnf.conf
  EOT

  ssh_username = "ec2-user"

  source_ami_filter {
    filters = {
      name = "al2023-ami-2023.*-kernel-6.1-x86_64"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  ami_name = "private-base-{{timestamp}}"

  run_tags = {
    Name = "packer-private-build"
  }
  tags = {
    Name = "private-base"
  }
}

build {
  sources = ["source.amazon-ebs.private"]

  provisioner "shell" {
    inline = ["curl -fsS http://proxy.internal:3128 >/dev/null || true"]
  }
}
