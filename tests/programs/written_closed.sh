# A shell job that writes its files the way scripts do: `>>` opens the
# log, appends a line and closes it again; `>` truncates and rewrites a
# small state file. Prints "step N".
for i in $(seq 1 60); do
    echo "line $i" >> log.txt
    echo "state $i" > state.txt
    echo "step $i"
    sleep 0.02
done
echo "done" >> log.txt
