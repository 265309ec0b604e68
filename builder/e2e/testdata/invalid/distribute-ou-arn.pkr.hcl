# want: ami_ou_arns[0]
# want: ou-123
# want: organizational unit ARN
source "null" "bad" {
  communicator = "none"
}

build {
  sources = ["source.null.bad"]

  post-processor "ami-distribute" {
    region      = "us-east-1"
    source_ami  = "ami-0123456789abcdef0"
    regions     = ["eu-west-1"]
    ami_ou_arns = ["ou-123"]
  }
}
