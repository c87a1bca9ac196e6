package org.sqlaudit.service.checker;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Statement normalisation of the Frequency checker (docs/checkers.md), the same regular expressions as
 * the Python service, with Unicode character classes as Python's {@code re} uses for {@code str}.
 */
public final class SqlNormalizer {

    private static final int FLAGS = Pattern.UNICODE_CHARACTER_CLASS;
    private static final Pattern STRING = Pattern.compile("'(?:[^']|'')*'", FLAGS);
    private static final Pattern NUMBER =
            Pattern.compile("(?<![\\w$.])[-+]?\\d+(?:\\.\\d+)?(?:[eE][-+]?\\d+)?(?![\\w$])", FLAGS);
    private static final Pattern LIST = Pattern.compile("\\(\\s*\\?(?:\\s*,\\s*\\?)*\\s*\\)", FLAGS);
    private static final Pattern SPACE = Pattern.compile("\\s+", FLAGS);

    private SqlNormalizer() {
    }

    /**
     * Normalises a statement so that executions differing only in literals compare equal. In order:
     * single-quoted strings to {@code ?}; numbers (not part of an identifier) to {@code ?}; a parenthesised
     * list of only {@code ?} to {@code (?)}; whitespace runs to one space; trailing {@code ;} and surrounding
     * spaces removed; lower-cased. {@code SELECT * FROM t1 WHERE id IN (1, 2,3) AND name = 'O''Brien';}
     * becomes {@code select * from t1 where id in (?) and name = ?}.
     */
    public static String normalize(String sql) {
        String out = STRING.matcher(sql).replaceAll("?");
        out = NUMBER.matcher(out).replaceAll("?");
        out = LIST.matcher(out).replaceAll("(?)");
        out = SPACE.matcher(out).replaceAll(" ").strip();
        out = stripTrailing(out, ';').strip();
        return out.toLowerCase(Locale.ROOT);
    }

    private static String stripTrailing(String s, char c) {
        int end = s.length();
        while (end > 0 && s.charAt(end - 1) == c) {
            end--;
        }
        return s.substring(0, end);
    }
}
