# want: source_ami
# want: required, or set source_ami_filter
source "ami-ebs" "bad" {
  region        = "us-east-1"
  instance_type = "t3.micro"
  ssh_username  = "ec2-user"
  ami_name      = "bad-input-{{timestamp}}"

}

build {
  sources = ["source.ami-ebs.bad"]
}
