/* file_id.h — what a watched file looked like when it was read, so a tick can tell whether it changed
 * (ticket keys, OCSP responses: re-read when the file changes, whether edited in place or renamed over). */
#ifndef TLSOFF_FILE_ID_H
#define TLSOFF_FILE_ID_H

#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

struct file_id {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	mode_t mode;
	struct timespec mtime, ctime;
};

void file_id_of(const struct stat *st, struct file_id *id);
/* stat(path): a file that cannot be stat'ed is "does not exist" (all zero). */
void file_id_stat(const char *path, struct file_id *id);
/* Same file, same contents as far as stat can tell (device, inode, size, mtime, ctime; not the mode). */
bool file_id_same(const struct file_id *a, const struct file_id *b);

#endif
