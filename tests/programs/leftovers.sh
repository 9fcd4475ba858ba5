# A shell job that makes a directory every ten steps (an external mkdir)
# and appends each step's line to a file in it; a python child writes a
# new file every ten steps too. Prints what it made and "step N". A
# restart must find neither the directories nor the files the killed run
# made after the checkpoint (mkdir failed with EEXIST, and the parts held
# lines twice).
for i in $(seq 1 60); do
    d=d$((i / 10))
    if [ $((i % 10)) = 0 ] || [ $i = 1 ]; then
        if mkdir $d 2>/dev/null; then echo "made $d"; else echo "mkdir $d failed"; fi
        python3 -c "import sys; open(sys.argv[1], 'x').write('made at $i\n')" $d/new.txt \
            || echo "$d/new.txt existed"
    fi
    echo "line $i" >> $d/part.txt
    echo "step $i"
    sleep 0.03
done
cat d*/part.txt d*/new.txt | md5sum
