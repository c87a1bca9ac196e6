package org.sqlaudit.service.checker;

import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Per-partition state of tumbling windows on {@code produced_at}, aligned to the epoch.
 *
 * <p>The window of an event is {@code produced_at / window_ms}. A window is closed (its state dropped,
 * later events for it ignored as <em>late</em>) once the newest {@code produced_at} seen on the partition
 * is more than {@code retention_ms} past the window's end. Not thread-safe: the caller serialises access.
 *
 * @param <S> the state kept per (key, window)
 */
final class TumblingWindows<S> {

    private record WindowKey(Object key, long window) {
    }

    private static final class PartitionState<S> {
        long newestMs;
        final Map<WindowKey, S> windows = new HashMap<>();
    }

    private final long windowMs;
    private final long retentionMs;
    private final Supplier<S> factory;
    private final Map<Integer, PartitionState<S>> partitions = new HashMap<>();
    private long late;

    TumblingWindows(long windowMs, long retentionMs, Supplier<S> factory) {
        this.windowMs = windowMs;
        this.retentionMs = retentionMs;
        this.factory = factory;
    }

    /** State of {@code key}'s window for this event, or {@code null} when the window is closed (late event). */
    S get(int partition, Object key, long producedAt) {
        PartitionState<S> part = partitions.computeIfAbsent(partition, p -> new PartitionState<>());
        long window = producedAt / windowMs;
        if (producedAt > part.newestMs) {
            part.newestMs = producedAt;
            evict(part);
        }
        if ((window + 1) * windowMs + retentionMs < part.newestMs) {
            late++;
            return null;
        }
        return part.windows.computeIfAbsent(new WindowKey(key, window), k -> factory.get());
    }

    private void evict(PartitionState<S> part) {
        // Cheap amortised eviction: only when the map has grown.
        if (part.windows.size() < 1024) {
            return;
        }
        long horizon = part.newestMs - retentionMs;
        part.windows.keySet().removeIf(k -> (k.window() + 1) * windowMs < horizon);
    }

    void forget(Collection<Integer> gone) {
        gone.forEach(partitions::remove);
    }

    long late() {
        return late;
    }

    int size() {
        return partitions.values().stream().mapToInt(p -> p.windows.size()).sum();
    }
}
