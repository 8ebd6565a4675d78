terraform import immutable_app.web web
terraform import immutable_app.web sfr-0123456789abcdef0
