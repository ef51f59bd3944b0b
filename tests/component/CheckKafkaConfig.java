import java.io.FileReader;
import java.util.Properties;
import java.util.Set;

import kafka.server.KafkaConfig;
import org.apache.kafka.metadata.authorizer.StandardAuthorizer;

/**
 * Parses broker properties files with Kafka's own parser (KafkaConfig.fromProps: types, ranges
 * and the KRaft consistency checks a broker runs at start) and names keys Kafka does not know.
 * Prints one tab-separated line per finding: FILE OK | FILE ERROR message | FILE UNKNOWN key.
 * Compiled and run by test_production_templates.py against the cached Kafka jars.
 */
public class CheckKafkaConfig {
    public static void main(String[] args) throws Exception {
        Set<String> known = new java.util.HashSet<>(KafkaConfig.configDef().names());
        // Read by the KRaft authorizer itself (StandardAuthorizer.configure), not by KafkaConfig.
        known.add(StandardAuthorizer.SUPER_USERS_CONFIG);
        known.add(StandardAuthorizer.ALLOW_EVERYONE_IF_NO_ACL_IS_FOUND_CONFIG);
        for (String file : args) {
            Properties props = new Properties();
            try (FileReader reader = new FileReader(file)) {
                props.load(reader);
            }
            for (String key : props.stringPropertyNames()) {
                if (!known.contains(key) && !known.contains(withoutListenerPrefix(key))) {
                    System.out.println(file + "\tUNKNOWN\t" + key);
                }
            }
            try {
                KafkaConfig config = KafkaConfig.fromProps(props, false);
                if (StandardAuthorizer.class.getName().equals(props.getProperty("authorizer.class.name"))) {
                    new StandardAuthorizer().configure(config.originals());
                }
                System.out.println(file + "\tOK");
            } catch (Exception e) {
                System.out.println(file + "\tERROR\t" + e.getClass().getSimpleName() + ": " + e.getMessage());
            }
        }
    }

    /** listener.name.LISTENER.[MECHANISM.]CONFIG overrides CONFIG for one listener. */
    static String withoutListenerPrefix(String key) {
        if (!key.startsWith("listener.name.")) {
            return key;
        }
        String rest = key.substring("listener.name.".length());
        rest = rest.substring(rest.indexOf('.') + 1);
        if (rest.matches("(?i)(scram-sha-256|scram-sha-512|plain|gssapi|oauthbearer)\\..*")) {
            rest = rest.substring(rest.indexOf('.') + 1);
        }
        return rest;
    }
}
