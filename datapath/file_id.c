/* file_id.c — see file_id.h. */
#include <string.h>

#include "tlsoff/file_id.h"

void file_id_of(const struct stat *st, struct file_id *id)
{
	memset(id, 0, sizeof(*id));
	id->exists = true;
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mode = st->st_mode;
	id->mtime = st->st_mtim;
	id->ctime = st->st_ctim;
}

bool file_id_same(const struct file_id *a, const struct file_id *b)
{
	if (a->exists != b->exists)
		return false;
	return !a->exists || (a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
			      a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec &&
			      a->ctime.tv_sec == b->ctime.tv_sec && a->ctime.tv_nsec == b->ctime.tv_nsec);
}

void file_id_stat(const char *path, struct file_id *id)
{
	struct stat st;
	if (stat(path, &st) == 0)
		file_id_of(&st, id);
	else
		memset(id, 0, sizeof(*id));
}
