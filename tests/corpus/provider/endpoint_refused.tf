# ec2 endpoint where nothing listens: one error naming it, at once
# summary: AWS Endpoint Unreachable
# at: data "immutable_ami" "base" {

provider "immutable" {
  endpoints {
    ec2 = "http://127.0.0.1:1"
  }
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
