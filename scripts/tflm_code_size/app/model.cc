// Dummy model buffer (not a valid flatbuffer). Defined in its own translation
// unit so the compiler cannot see its contents when compiling main.cc.
extern const unsigned char g_model[];
alignas(16) const unsigned char g_model[64] = {0x1c, 0, 0, 0, 'T', 'F', 'L', '3'};
