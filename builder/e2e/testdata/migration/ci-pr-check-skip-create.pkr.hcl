# The pipeline a product team runs on every pull request: it provisions an
# instance to prove the install scripts still work, but creates no AMI
# unless the pipeline runs on the main branch (-var create_ami=true).
# Covers: skip_create_ami from a bool variable, source_ami_filter,
# run_tags, a shell provisioner with environment_vars and
# execute_command, no required_plugins block (older template).
# build: yes

variable "create_ami" {
  type    = bool
  default = false
}

variable "git_sha" {
  type    = string
  default = "0000000"
}

source "amazon-ebs" "pr" {
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

  ami_name        = "orders-service-${var.git_sha}"
  skip_create_ami = !var.create_ami

  run_tags = {
    Name     = "packer-pr-${var.git_sha}"
    Pipeline = "pull-request"
  }
  tags = {
    GitSha = var.git_sha
  }
}

build {
  sources = ["source.amazon-ebs.pr"]

  provisioner "shell" {
    environment_vars = ["GIT_SHA=${var.git_sha}"]
    execute_command  = "chmod +x {{ .Path }}; {{ .Vars }} sh -c '{{ .Path }}'"
    inline = [
      "echo \"checking install scripts at $GIT_SHA\"",
      "test -d /tmp",
    ]
  }
}
