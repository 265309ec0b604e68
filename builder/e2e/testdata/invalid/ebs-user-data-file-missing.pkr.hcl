# want: user_data_file
# want: /nonexistent/user-data.sh
# want: no such file
source "ami-ebs" "bad" {
  region         = "us-east-1"
  instance_type  = "t3.micro"
  source_ami     = "ami-0123456789abcdef0"
  ssh_username   = "ec2-user"
  ami_name       = "bad-input-{{timestamp}}"
  user_data_file = "/nonexistent/user-data.sh"
}

build {
  sources = ["source.ami-ebs.bad"]
}
