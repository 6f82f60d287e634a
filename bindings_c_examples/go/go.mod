module vlmrt.example/vlmrt

go 1.19
