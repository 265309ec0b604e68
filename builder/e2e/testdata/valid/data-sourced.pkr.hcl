# Values that come from data sources are unknown while `packer validate`
# runs; they are checked once `packer build` has resolved them.
data "null" "base_image" {
  input = "ami-0123456789abcdef0"
}

data "null" "network" {
  input = "subnet-0123456789abcdef0"
}

data "null" "key" {
  input = "alias/images"
}

locals {
  build_region = "us-east-1"
}

source "ami-ebs" "app" {
  region            = local.build_region
  instance_type     = "t3.micro"
  source_ami        = data.null.base_image.output
  subnet_id         = data.null.network.output
  ssh_username      = "ec2-user"
  ami_name          = "app-{{timestamp}}"

  launch_block_device_mappings {
    device_name = "/dev/xvda"
    volume_size = 16
    encrypted   = true
    kms_key_id  = data.null.key.output
  }
}

source "ami-instance" "legacy" {
  region         = local.build_region
  instance_type  = "m3.medium"
  local_emulator = true
  source_ami     = data.null.base_image.output
  ssh_username   = "root"
  ami_name       = "legacy-{{timestamp}}"
  s3_bucket      = "my-bundles"
}

source "null" "existing" {
  communicator = "none"
}

build {
  sources = ["source.ami-ebs.app", "source.ami-instance.legacy"]
}

build {
  sources = ["source.null.existing"]

  post-processor "ami-distribute" {
    region     = "us-east-1"
    source_ami = data.null.base_image.output
    regions    = ["eu-west-1"]
    kms_key_id = data.null.key.output
  }
}
