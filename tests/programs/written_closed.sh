# A shell job that writes its files the way scripts do: `>>` opens the
# log, appends a line and closes it again; `>` truncates and rewrites a
# small state file; an external command appends to another log from a
# process of its own, which has ended by the time of any checkpoint.
# Prints "step N".
for i in $(seq 1 60); do
    echo "line $i" >> log.txt
    echo "state $i" > state.txt
    /bin/echo "ext $i" >> ext.log
    echo "step $i"
    sleep 0.02
done
echo "done" >> log.txt
