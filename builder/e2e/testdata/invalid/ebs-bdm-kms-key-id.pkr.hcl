# want: launch_block_device_mappings[0].kms_key_id
# want: not-a-key
# want: alias/<name>
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  launch_block_device_mappings {
    device_name = "/dev/xvda"
    encrypted   = true
    kms_key_id  = "not-a-key"
  }
}

build {
  sources = ["source.ami-ebs.bad"]
}
