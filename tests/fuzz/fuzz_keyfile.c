/* fuzz_keyfile — CURVE key files (security/keys.h readers).
 *
 * The input is written to a file of mode 0600 and read both as a public
 * key file (up to 8 keys) and as a secret key file.  Every key read must be
 * 40 Z85 characters; a secret key read must give the public key libzmq
 * derives from it, and survive ifp_key_write_pair + read unchanged. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "fuzz.h"
#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = ifp_fuzz_tmp_path("key.txt");
    unlink(path);
    FILE *f = fopen(path, "wb");
    FUZZ_CHECK(f != NULL, "cannot write %s", path);
    if (size) fwrite(data, 1, size, f);
    fclose(f);
    chmod(path, 0600);

    char keys[8][IFP_Z85_KEY];
    int n = -1;
    ifp_err_t err = {0};
    int rc = ifp_key_read_public(path, keys, 8, &n, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
    } else {
        FUZZ_CHECK(n >= 1 && n <= 8, "%d keys", n);
        for (int i = 0; i < n; i++) FUZZ_CHECK(ifp_key_is_z85(keys[i]), "key %d is not Z85", i);
    }

    ifp_keypair_t kp, again;
    memset(&err, 0, sizeof err);
    rc = ifp_key_read_secret(path, &kp, &err);
    if (rc) {
        ifp_fuzz_check_err(rc, &err);
        return 0;
    }
    FUZZ_CHECK(ifp_key_is_z85(kp.sec) && ifp_key_is_z85(kp.pub), "a pair that is not Z85");
    char pub[IFP_Z85_KEY];
    FUZZ_CHECK(zmq_curve_public(pub, kp.sec) == 0 && !strcmp(pub, kp.pub), "public key does not match the secret");
    const char *base = ifp_fuzz_tmp_path("pair");
    char key[600];
    snprintf(key, sizeof key, "%s.key", base);
    FUZZ_CHECK(ifp_key_write_pair(base, &kp, "fuzz", 1, &err) == 0, "write: %s", err.msg);
    FUZZ_CHECK(ifp_key_read_secret(key, &again, &err) == 0, "read back: %s", err.msg);
    FUZZ_CHECK(!strcmp(again.sec, kp.sec) && !strcmp(again.pub, kp.pub), "write + read changed the pair");
    return 0;
}
