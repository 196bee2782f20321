"""The semi-supervision experiment: every preset × pair count × seed, trained as ensembles.

EXP/experiment.json          the resolved settings (a rerun with the same settings resumes)
EXP/chunks/{id}/             one trained ensemble, written atomically once it is complete:
    members.json             the MemberSpecs (each with its preset's name, weights and family), in
                             ensemble order
    metrics.json             per member: every test metric (workspace evaluation + downstream);
                             and the model family
    pictures.npz             per direction a_to_b: predicted b latents of the first test examples
    model.safetensors        the ensemble's weights (each member loadable alone)
    validation.csv           every validation check of every member that keeps its best weights:
                             the step and each direction's translation loss
EXP/chunks/.partial-{id}/    an ensemble still training, saved every few minutes (partial.py)
EXP/results.csv              one row per member: preset, paired, seed, every metric, the
                             training step whose weights it kept (`kept_step`), the minimum over
                             validation checks of each translation loss (`val_min/...`); in a
                             grid, its point (`grid_point`, `lr`, `weight_decay`, `coefficient/...`);
                             with --patience, the steps its ensemble trained (`trained_steps`)
EXP/validation.csv           the chunks' validation curves together, with the sum over directions
EXP/selection.json           in a grid: the point each (preset, N) keeps, chosen on validation
                             (grid.py); the readings below use only the members of those points
EXP/efficiency.json          data-efficiency ratios, the project's reading and the paper's
                             (`paper_protocol`) (efficiency.py)
EXP/figures/*.png|svg        curves against N (figures.py)
EXP/report.html              the self-contained report (experiment_report.py)

A member is done when the chunk holding it exists, so an interrupted experiment rerun with the
same command trains only the members it had not finished (an ensemble cut short resumes from its
partial save), and every file listed from results.csv
on can be written again from the chunks alone (`gw experiment reread`). Members are grouped into
chunks of at most `max_members`; on the CPU each chunk holds one preset (a `tr` ensemble then skips
the cycle losses), on a GPU presets are mixed so that one ensemble fills the device. Under
torchrun the chunks are shared out over the ranks by estimated cost (`assign_chunks`,
distributed.py) and rank 0 gathers and writes the results.

One job per module: config (the settings), parsing (the command line's text), candidates (finished
members of earlier experiments ranked as one choice), carried (the grid points they chose, for
`--points-from`), combined (several experiments read as one, `gw experiment combine`), planning (members
into chunks, chunks onto ranks), resume (the EXP folder), keep_best (training one chunk: best
weights, patience), partial (its saves while it trains), scoring
(test metrics of a chunk), results_io (chunk folders and results.csv), readings (baselines and
ratios), summary (the terminal's lines), run (the whole experiment) and reread (a finished one's
files written again).
"""
