# A shell job that makes a directory every ten steps (an external mkdir)
# and appends each step's line to a file in it; in each directory it
# makes a FIFO and a symbolic link, and a python child makes a new file
# (open "x"), binds a unix socket and makes a temporary file and
# directory through the C library (mkstemp, mkdtemp). Prints what it made and "step N". A
# restart must find neither the directories nor the files the killed run
# made after the checkpoint (mkdir, mkfifo, ln -s failed with EEXIST, bind
# with EADDRINUSE, and the parts held lines twice).
for i in $(seq 1 60); do
    d=d$((i / 10))
    if [ $((i % 10)) = 0 ] || [ $i = 1 ]; then
        if mkdir $d 2>/dev/null; then echo "made $d"; else echo "mkdir $d failed"; fi
        mkfifo $d/fifo || echo "mkfifo $d/fifo failed"
        ln -s part.txt $d/link || echo "ln -s $d/link failed"
        python3 -c "
import socket, sys
d = sys.argv[1]
open(d + '/new.txt', 'x').write('made at $i\n')
socket.socket(socket.AF_UNIX).bind(d + '/sock')
# A temporary file and directory the C library makes (mkstemp, mkdtemp).
import ctypes
libc = ctypes.CDLL(None)
libc.mkdtemp.restype = ctypes.c_char_p
libc.mkdtemp(ctypes.create_string_buffer((d + '/tmpdXXXXXX').encode()))
fd = libc.mkstemp(ctypes.create_string_buffer((d + '/tmpfXXXXXX').encode()))
import os
os.write(fd, b'temp')
os.close(fd)
" $d || echo "python in $d failed"
    fi
    # An atomic save over a file the job found there (first after the
    # checkpoint): a restart cannot put back what was there, and must not
    # remove it.
    if [ $i = 20 ]; then echo "version $i" > cfg.tmp; mv cfg.tmp config.txt; fi
    echo "line $i" >> $d/part.txt
    echo "step $i"
    sleep 0.03
done
cat d*/part.txt d*/new.txt | md5sum
