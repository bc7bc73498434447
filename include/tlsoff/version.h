/* version.h — the release, shown by tlsoffd --version, tlsoffctl --version and tlsoffctl status. */
#ifndef TLSOFF_VERSION_H
#define TLSOFF_VERSION_H
#define TLSOFF_VERSION "0.2.0"
#endif
