/* commands.h: the commands of the vqs tool, which main.c's table
 * dispatches to, and their help (cli.h: the option table of each is also
 * what its parser reads). Each command takes main's argc/argv shifted by one
 * (argv[0] is the command's name) and returns the exit status: 0, 1 for a
 * runtime failure, 2 for bad usage. */
#ifndef VQS_COMMANDS_H
#define VQS_COMMANDS_H

#include "cli.h"

int vqs_cmd_demo(int argc, char **argv); /* tools/demo.c */
int vqs_cmd_gt(int argc, char **argv);   /* tools/gt.c */
int vqs_cmd_build(int argc, char **argv); /* tools/build_cmd.c */
int vqs_cmd_codec(int argc, char **argv); /* tools/codec_cmd.c */
int vqs_cmd_eval(int argc, char **argv);  /* tools/eval.c */
int vqs_eval_shards(int argc, char **argv); /* tools/eval_shards.c: vqs eval --shards */
int vqs_cmd_report(int argc, char **argv);    /* tools/report_cmds.c */
int vqs_cmd_recommend(int argc, char **argv);
int vqs_cmd_import(int argc, char **argv); /* tools/store_cmds.c */
int vqs_cmd_search(int argc, char **argv);
int vqs_cmd_info(int argc, char **argv);
int vqs_cmd_drop(int argc, char **argv);
int vqs_cmd_serve(int argc, char **argv); /* tools/serve.c */
int vqs_cmd_weights(int argc, char **argv); /* tools/weights_cmd.c */
int vqs_cmd_disk_build(int argc, char **argv); /* tools/disk_cmd.c */
int vqs_cmd_disk_search(int argc, char **argv);

extern const vqs_cli_help vqs_demo_help, vqs_gt_help, vqs_codec_help, vqs_eval_help, vqs_report_help,
    vqs_recommend_help, vqs_import_help, vqs_search_help, vqs_info_help, vqs_drop_help, vqs_serve_help,
    vqs_weights_help, vqs_disk_build_help, vqs_disk_search_help, vqs_build_help,
    vqs_eval_shards_help;

#endif
