# A shell job that writes its files the way scripts do: `>>` opens the
# log, appends a line and closes it again; `>` truncates and rewrites a
# small state file; an external command appends to another log from a
# process of its own, which has ended by the time of any checkpoint; `mv`
# puts a new version of a file in place.
# Prints "step N".
for i in $(seq 1 60); do
    # What the last step moved in place (a restart must have put it back).
    echo "line $i saw $(cat moved.txt 2>/dev/null)" >> log.txt
    echo "state $i" > state.txt
    /bin/echo "ext $i" >> ext.log
    echo "moved $i" > moved.tmp && mv moved.tmp moved.txt
    echo "step $i"
    sleep 0.02
done
echo "done" >> log.txt
