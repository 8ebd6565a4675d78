# negative max_retries
# summary: Value Out Of Range
# at: max_retries = -1

provider "immutable" {
  max_retries = -1
}

data "immutable_ami" "base" {
  layer = "corpus-base"
}
