# want: ami_org_arns[0]
# want: arn:aws:organizations::<12-digit
source "null" "bad" {
  communicator = "none"
}

build {
  sources = ["source.null.bad"]

  post-processor "ami-distribute" {
    region       = "us-east-1"
    source_ami   = "ami-0123456789abcdef0"
    regions      = ["eu-west-1"]
    ami_org_arns = ["arn:aws:organizations::123:organization/o-x"]
  }
}
