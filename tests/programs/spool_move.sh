# spool_move.sh: a spool of 60 jobs in in/; each step appends one to
# processed.log and moves it to done/ with mv (a process of the job), as
# a spool consumer does. Prints each step, then what each directory holds.
mkdir -p in done
for i in $(seq 1 60); do echo "job $i" > "in/j$i"; done
for i in $(seq 1 60); do
    cat "in/j$i" >> processed.log
    mv "in/j$i" done/
    echo "step $i"
    sleep 0.02
done
echo "in: $(ls in | sort | tr '\n' ' ')"
echo "done: $(ls done | sort -V | tr '\n' ' ')"
