# ec2 endpoint with a scheme other than http(s)
# summary: Invalid Endpoint URL
# at: ec2 = "ftp://127.0.0.1:1"

provider "immutable" {
  endpoints {
    ec2 = "ftp://127.0.0.1:1"
  }
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
