package sqlaudit.chaos;

import com.sun.management.GarbageCollectorMXBean;
import com.sun.management.GcInfo;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryUsage;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * A heap leak on demand: loaded into a running JVM, it holds byte arrays until the heap's occupancy after a
 * garbage collection is {@code fill} of its maximum, keeps it there for {@code seconds}, then lets go.
 *
 * <p>Loaded with {@code jcmd <pid> JVMTI.agent_load <this jar> fill:0.96,seconds:120,mark:<id>,marker:<file>}
 * (jcmd reads {@code =} as its own syntax, hence the colons); the marker file exists while the hog holds. A second
 * load with {@code release} lets go at once (the class, loaded once by the system class loader, keeps its state
 * between loads). Nothing of the service is asked to help: any HotSpot JVM with the attach mechanism on
 * (the default) will do, whatever runs in it. Chaos Monkey for Spring Boot's memory assault does the same from
 * inside the application; this one needs no dependency in it.
 *
 * <p>Most of the fill is allocated at once from the live set a full collection leaves; then, after each
 * collection, the occupancy it left is read (old generation included: the floor of what the heap alerts see
 * between collections) and a few region-sized arrays are added while it is under the target, or dropped
 * when it is over halfway from the target to a full heap: when the service's own live set grows, the hog
 * gives way rather than push it into an OutOfMemoryError. What it does is printed on the JVM's stderr.
 *
 * <p>With {@code churn:<MiB/s>} it also allocates small arrays at that rate, each alive about half a second
 * (see {@link #churn}): the allocation storm that turns a nearly full heap into back-to-back collections.
 */
public final class HeapHog {
    private static final int CHUNK = chunkBytes();
    private static final int STEP_CHUNKS = 4;
    private static final int MARGIN_CHUNKS = 16;
    private static final double CHURN_LIFE_S = 0.5;
    private static final List<byte[]> HELD = new ArrayList<>();
    private static final Set<String> HEAP_POOLS = ManagementFactory.getMemoryPoolMXBeans().stream()
            .filter(pool -> pool.getType() == java.lang.management.MemoryType.HEAP)
            .map(java.lang.management.MemoryPoolMXBean::getName)
            .collect(Collectors.toSet());
    private static Thread keeper;

    private HeapHog() {
    }

    public static synchronized void agentmain(String options) {
        String opts = options == null ? "" : options.trim();
        stop();
        if (opts.equals("release")) {
            log("release", "released on request");
            return;
        }
        double fill = 0.96;
        double seconds = 60;
        String mark = "heap-hog";
        String marker = null;
        double churn = 0;
        for (String pair : opts.split(",")) {
            if (pair.isEmpty()) {
                continue;
            }
            String[] kv = pair.split(":", 2);
            if (kv.length != 2) {
                throw new IllegalArgumentException("HeapHog: option '" + pair + "' is not key:value");
            }
            switch (kv[0]) {
                case "fill" -> fill = Double.parseDouble(kv[1]);
                case "seconds" -> seconds = Double.parseDouble(kv[1]);
                case "mark" -> mark = kv[1];
                case "marker" -> marker = kv[1];
                case "churn" -> churn = Double.parseDouble(kv[1]);
                default -> throw new IllegalArgumentException("HeapHog: unknown option '" + kv[0] + "'");
            }
        }
        if (!(fill > 0 && fill < 1) || !(seconds > 0) || !(churn >= 0 && churn <= 512)) {
            throw new IllegalArgumentException("HeapHog: fill must be in (0, 1), seconds > 0, churn in [0, 512] MiB/s");
        }
        long deadline = System.nanoTime() + (long) (seconds * 1e9);
        double target = fill;
        String tag = mark;
        Path file = marker == null ? null : Path.of(marker);
        long churnBytes = (long) (churn * (1 << 20));
        keeper = new Thread(() -> keep(target, deadline, tag, file, churnBytes), "heap-hog");
        keeper.setDaemon(true);
        keeper.start();
        log(tag, String.format("holding the heap at %.2f of its %d MiB for %.0f s%s", fill, max() >> 20, seconds,
                churn > 0 ? String.format(", churning %.0f MiB/s", churn) : ""));
    }

    private static void stop() {
        Thread t = keeper;
        keeper = null;
        if (t != null) {
            t.interrupt();
            try {
                t.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (HELD) {
            HELD.clear();
        }
    }

    private static void keep(double fill, long deadline, String mark, Path marker, long churnBytes) {
        String why = "stopped";
        Thread churner = null;
        try {
            if (marker != null) {
                marker.toFile().deleteOnExit();
            }
            long want = (long) (fill * max());
            // After a young collection the old generation still counts its garbage, so an occupancy above the
            // target is not yet a danger: the hog gives way only halfway between the target and a full heap.
            long danger = want + (max() - want) / 2;
            System.gc(); // one full collection: the live set the fill starts from
            long[] gc = afterLastGc();
            long lastGc = gc == null ? -1 : gc[0];
            long live = gc == null ? used() : gc[1];
            status(marker, mark, live); // holding from here on; filled once a collection says so
            long ring = (long) (churnBytes * CHURN_LIFE_S); // what the churn keeps alive at any time
            change((int) ((want - live - ring) / CHUNK) - MARGIN_CHUNKS); // most at once, the rest per collection
            log(mark, String.format("live set %d MiB, holding %d MiB", live >> 20, heldBytes() >> 20));
            if (churnBytes > 0) {
                churner = new Thread(() -> churn(churnBytes, deadline), "heap-hog-churn");
                churner.setDaemon(true);
                churner.start();
            }
            while (System.nanoTime() < deadline && !Thread.currentThread().isInterrupted()) {
                Thread.sleep(250);
                gc = afterLastGc();
                if (gc == null || gc[0] == lastGc) {
                    continue; // between collections the heap in use counts garbage: only an after-GC reading tells
                }
                lastGc = gc[0];
                if (gc[1] < want) {
                    change((int) Math.min(MARGIN_CHUNKS, (want - gc[1]) / CHUNK + 1)); // what a mixed or full GC freed
                } else if (gc[1] > danger) {
                    change((int) -Math.min(STEP_CHUNKS, (gc[1] - want) / CHUNK + 1));
                }
                status(marker, mark, gc[1]);
            }
            if (!Thread.currentThread().isInterrupted()) {
                why = "hold ended";
            }
        } catch (InterruptedException e) {
            why = "stopped";
        } catch (OutOfMemoryError e) {
            why = "OutOfMemoryError while filling";
        } catch (IOException | RuntimeException e) {
            why = "failed: " + e;
        } finally {
            if (churner != null) {
                churner.interrupt();
                try {
                    churner.join(1000); // its ring goes with it
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            release(mark, why, marker); // whatever ended the hold: nothing held, no status file saying otherwise
        }
    }

    /**
     * An allocation storm: {@code bytesPerSecond} of small arrays, each kept for about {@link #CHURN_LIFE_S}
     * in a ring that overwrites the oldest. Objects that outlive a few young collections are what makes a
     * collector work (copied to survivor space, promoted, then garbage in the old generation that only a mixed
     * or full collection frees): in a heap held nearly full, the young generation is small and collections
     * follow each other, which is what {@code FrequentGarbageCollection} is for. The ring counts in the
     * occupancy the hog holds at {@code fill}.
     */
    private static void churn(long bytesPerSecond, long deadline) {
        int perObject = 512;
        byte[][] ring = new byte[(int) Math.max(1, bytesPerSecond * CHURN_LIFE_S / perObject)][];
        long start = System.nanoTime();
        long made = 0;
        int next = 0;
        try {
            while (System.nanoTime() < deadline && !Thread.currentThread().isInterrupted()) {
                long due = (long) ((System.nanoTime() - start) / 1e9 * bytesPerSecond / perObject);
                for (; made < due; made++) {
                    ring[next] = new byte[perObject - 16];
                    next = next + 1 == ring.length ? 0 : next + 1;
                }
                Thread.sleep(5);
            }
        } catch (InterruptedException e) {
            // released
        } catch (OutOfMemoryError e) {
            log("churn", "OutOfMemoryError: stopped churning");
        }
    }

    /** The marker file says a hog is holding (what the fault waits for and a leftover audit looks for), and how much. */
    private static void status(Path marker, String mark, long afterGc) throws IOException {
        if (marker != null) {
            long held = heldBytes();
            Path tmp = marker.resolveSibling(marker.getFileName() + ".tmp");
            Files.writeString(tmp, String.format("mark=%s held_mib=%d after_gc_mib=%d max_mib=%d%n",
                    mark, held >> 20, afterGc >> 20, max() >> 20));
            Files.move(tmp, marker, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        }
    }

    private static long heldBytes() {
        synchronized (HELD) {
            return (long) HELD.size() * CHUNK;
        }
    }

    private static void release(String mark, String why, Path marker) {
        long held = heldBytes() >> 20;
        synchronized (HELD) {
            HELD.clear();
        }
        if (marker != null) {
            try {
                Files.deleteIfExists(marker);
            } catch (IOException e) {
                log(mark, "could not remove " + marker + ": " + e);
            }
        }
        log(mark, why + ": released " + held + " MiB");
    }

    /**
     * One G1 region less an array header (G1 gives an array of half a region or more whole regions of its own:
     * a byte[1 MiB] would take two 1 MiB regions and the heap would fill with slack); 1 MiB elsewhere.
     */
    private static int chunkBytes() {
        try {
            var bean = ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
            long region = Long.parseLong(bean.getVMOption("G1HeapRegionSize").getValue());
            if (region > 0 && bean.getVMOption("UseG1GC").getValue().equals("true")) {
                return (int) region - 64;
            }
        } catch (RuntimeException e) {
            // not HotSpot, or no such option: plain chunks
        }
        return 1 << 20;
    }

    /** Hold {@code chunks} more chunks (fewer when negative). */
    private static void change(int chunks) {
        synchronized (HELD) {
            for (int i = 0; i < chunks; i++) {
                HELD.add(new byte[CHUNK]);
            }
            for (int i = 0; i < -chunks && !HELD.isEmpty(); i++) {
                HELD.remove(HELD.size() - 1);
            }
        }
    }

    /** {collection id sum, heap bytes in use right after the most recent collection}, or null before any. */
    private static long[] afterLastGc() {
        long idSum = 0;
        GcInfo last = null;
        for (java.lang.management.GarbageCollectorMXBean bean : ManagementFactory.getGarbageCollectorMXBeans()) {
            if (bean instanceof GarbageCollectorMXBean gc) {
                GcInfo info = gc.getLastGcInfo();
                if (info != null) {
                    idSum += info.getId();
                    if (last == null || info.getEndTime() > last.getEndTime()) {
                        last = info;
                    }
                }
            }
        }
        if (last == null) {
            return null;
        }
        long after = 0;
        for (Map.Entry<String, MemoryUsage> pool : last.getMemoryUsageAfterGc().entrySet()) {
            if (HEAP_POOLS.contains(pool.getKey())) {
                after += pool.getValue().getUsed();
            }
        }
        return new long[] {idSum, after};
    }


    private static long used() {
        return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
    }

    private static long max() {
        return Runtime.getRuntime().maxMemory();
    }

    private static void log(String mark, String what) {
        System.err.println("[heap-hog " + mark + "] " + what);
    }
}
