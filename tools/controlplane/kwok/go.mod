// Wrapper module that builds kwok and kwokctl from the published sigs.k8s.io/kwok module
// (tests only; see ../build.py).
module podrunner.invalid/controlplane/kwok

go 1.26.0
