#!/bin/sh
# test_dist_reduce under mpirun -np 3 (the order of a 3-way sum changes its
# bits; two ranks would not show it). 77 only without MPI or mpirun.
# Usage: dist_reduce.sh TEST_EXE HAVE_MPI(1|0) [MPIRUN]
[ "$2" = 1 ] || { echo "skip: built without MPI"; exit 77; }
[ -n "${3:-}" ] && [ -x "$3" ] || { echo "skip: mpirun not found (openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# Open MPI's own allocations outlive MPI_Finalize (see mpi_run.sh).
exec env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0" "$3" -np 3 --oversubscribe --bind-to none "$1"
