# want: imds_support
# want: v1
# want: v2.0
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  source_ami    = "ami-0123456789abcdef0"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"
  imds_support  = "v1"
}

build {
  sources = ["source.ami-ebs.bad"]
}
