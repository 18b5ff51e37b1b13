// Package nginx checks the fault backends' nginx.conf with nginx itself:
// `nginx -t` on every one the meshes render, and each run for real on
// loopback, where it must answer the fault's status on traffic and 200 on
// /ready (issue 27). The test is all there is. It needs an nginx binary:
// `make nginx` installs Debian's when none is on PATH.
package nginx
