# Three shards of an agency's connections every 6 hours: three
# allocations, allocation i mirroring shard i+1 of 3 (NOMAD_ALLOC_INDEX
# counts from 0, --shard from 1) into its own client's disk.
# prohibit_overlap: a run never starts while the last one is still going.
# Keep `count` and the N of --shard equal.
job "vault-mirror" {
  type = "batch"

  periodic {
    crons            = ["17 */6 * * *"]
    prohibit_overlap = true
    time_zone        = "UTC"
  }

  group "shard" {
    count = 3

    # A failed shard is not retried at once: the next run resumes it.
    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "mirror" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        # exec: vault-mirror itself receives the kill signal.
        args = ["-c", "exec /usr/local/bin/vault-mirror mirror --all-connections --shard $((NOMAD_ALLOC_INDEX + 1))/3 --out /srv/vault-archive --quiet"]
      }

      env {
        VAULT_MIRROR_CONFIG = "/etc/vault-mirror/agency.toml"
      }

      # The first signal stops every connection in order (exit 130).
      kill_signal  = "SIGINT"
      kill_timeout = "60s"

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
