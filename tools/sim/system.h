/* SPDX-License-Identifier: MIT */
/*
 * kvaccel-sim - systems: --system NAME|FILE names a file of kvaccel-sim options (a documented
 * configuration of a published system, tools/sim/systems/NAME.system), inserted before the
 * command line's own options so that these override it. Where NAME is looked up:
 * --systems-dir DIR, else $KVACCEL_SIM_SYSTEMS, else beside the binary: BIN/../../tools/sim/systems
 * (the build tree, build/tools/kvaccel-sim) or BIN/../share/kvaccel/sim/systems (installed).
 */
#ifndef SIM_SYSTEM_H
#define SIM_SYSTEM_H

struct sim_argv {
	int argc;
	char **argv;		/* argv[0], the system's options, the command line's; NULL-ended */
	char *buf;		/* the file's text the system's options point into */
	char *path;		/* the system file read (NULL: none) */
};

/*
 * The command line with --system and --systems-dir taken out and the system's options put in
 * their place (right after argv[0]). 0, or -1 with the message on stderr ("kvaccel-sim: --system
 * x: no such system (DIR/x.system)", "FILE:LINE: what").
 */
int sim_system_expand(int argc, char **argv, struct sim_argv *out);
void sim_system_free(struct sim_argv *a);

/* The directory NAMEs are looked up in (malloc'd): --systems-dir's @dir if given, else as above. */
char *sim_systems_dir(const char *dir);

#endif
