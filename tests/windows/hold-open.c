/* Holds a file open as a picture viewer does (read access, others may
 * read but not write, rename or delete it) until a flag file appears:
 * tests/windows.sh uses it to show what a run does with a file it must
 * replace while another program has it open. Built for the Wine test set
 * only, never shipped. Usage: hold-open.exe FILE FLAG */
#include <windows.h>
#include <stdio.h>

int wmain(int argc, wchar_t **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: hold-open FILE FLAG\n");
        return 2;
    }
    HANDLE file = CreateFileW(argv[1], GENERIC_READ, FILE_SHARE_READ, NULL,
                              OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (file == INVALID_HANDLE_VALUE) {
        fprintf(stderr, "hold-open: cannot open the file (error %lu)\n", GetLastError());
        return 1;
    }
    printf("holding\n");
    fflush(stdout);
    while (GetFileAttributesW(argv[2]) == INVALID_FILE_ATTRIBUTES) {
        Sleep(50);
    }
    CloseHandle(file);
    return 0;
}
